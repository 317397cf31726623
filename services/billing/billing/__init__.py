"""Billing: charges, invoices, credit notes and payments for the right payer."""
