"""Building blocks every partnership service may import.

Nothing here knows about schools, subscriptions or invoices: only how events are
enveloped, stored, published, consumed, retried and observed, and how a service
finds its configuration and database. A service handed to another operator pins
this library like any other dependency.
"""
import warnings

# eventlet announces its own deprecation when imported; that one warning says
# nothing about this code, so it alone is silenced. Processes started by
# `nameko run` silence it through PYTHONWARNINGS (see the Makefile), because
# nameko imports eventlet before any of our code runs.
EVENTLET_DEPRECATION = r"\s*Eventlet is deprecated"
warnings.filterwarnings("ignore", message=EVENTLET_DEPRECATION)

__version__ = "0.1.0"
