"""Billing's own dependency providers."""
from __future__ import annotations

import logging

import datetime as dt
import threading
import time

from nameko.extensions import DependencyProvider

from billing.operator_identity import ConfigurationError, operator_identity
from shared import business_date
from shared.metrics import metrics_for

log = logging.getLogger(__name__)


class OperatorIdentity(DependencyProvider):
    """The operator printed on every document, checked once when the service starts: outside development a
    missing VAT number, address or bank detail stops the service from starting, saying which
    (`billing.operator_identity`); a worker gets the checked `Operator`."""

    def setup(self):
        try:
            self.operator = operator_identity(self.container.config)
        except ConfigurationError as exc:
            log.critical("%s", exc)
            raise

    def get_dependency(self, worker_ctx):
        return self.operator


class BoardFigures(DependencyProvider):
    """The trust board's gauges (`partnership_billing_*`: revenue by year and area, paying members,
    buy-back, debt by age band, members), kept by the service rather than computed on each scrape.

    Guarantees: a scrape only reads the gauges (it never walks the books); after any state-changing
    worker (a document issued, a payment, a credit note, an upstream event) or a finished job the
    figures are recomputed in a background green thread, coalesced to at most one recomputation per
    `min_interval` seconds, and at least every `max_age` seconds, since debt ages with the calendar.
    `partnership_billing_board_computed_timestamp_seconds` says when they were last computed."""

    def __init__(self, min_interval: float = 5.0, max_age: float = 3600.0):
        self.min_interval = min_interval
        self.max_age = max_age

    def setup(self):
        from shared.storage import Storage

        self._storage = next(d for d in self.container.dependencies if isinstance(d, Storage))
        self._metrics = metrics_for(self.container.service_name)
        self._dirty = threading.Event()
        self._stopping = False
        self._thread = None
        self._computed = self._metrics.gauge("board_computed_timestamp_seconds",
                                             "When the board's figures were last computed (Unix time).")
        from shared.jobs import Jobs

        for jobs in (d for d in self.container.dependencies if isinstance(d, Jobs)):
            jobs.on_finished.append(lambda kind, status: self.changed())  # a billing run issued documents

    def start(self):
        self._dirty.set()  # compute once at start
        self._thread = self.container.spawn_managed_thread(self._keep, identifier="board_figures")

    def stop(self):
        self._stopping = True
        self._dirty.set()
        if self._thread is not None:
            self._thread.wait()

    def kill(self):
        self._stopping = True
        self._dirty.set()

    def get_dependency(self, worker_ctx):
        return self

    def changed(self) -> None:
        """The books changed: recompute soon (coalesced)."""
        self._dirty.set()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        # A GET changes nothing; anything else (a write, an upstream event, a timer) may have.
        if getattr(worker_ctx.entrypoint, "method", None) != "GET":
            self._dirty.set()

    def _keep(self) -> None:
        last = 0.0
        while not self._stopping:
            self._dirty.wait(self.max_age)
            if self._stopping:
                return
            wait = self.min_interval - (time.monotonic() - last)
            if wait > 0:
                time.sleep(wait)  # coalesce a burst of changes into one recomputation
            self._dirty.clear()
            last = time.monotonic()
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - the database may be down; the next change or hour retries
                log.warning("board figures not recomputed", exc_info=True)

    def refresh(self) -> None:
        from billing.service_layer import reports

        with self._storage.database.reader() as session:
            # the books as they stand (every record, even one dated ahead), debt aged on today
            picture = reports.sustainability(session, business_date.today(), known_by=dt.date.max)
        gauge = self._metrics.gauge
        revenue = gauge("revenue_pence", "Invoiced revenue net of credit notes, pence.",
                        ("academic_year", "service_area"))
        for year, areas in picture["revenue_pence"].items():
            for area, pence in areas.items():
                revenue.labels(year, area).set(pence)
        paying = gauge("paying_members", "Members invoiced in the academic year.", ("academic_year",))
        for year, count in picture["paying_members"].items():
            paying.labels(year).set(count)
        buy_back = gauge("buy_back_ratio", "Share of last year's buyers who bought again.", ("academic_year",))
        for year, figures in picture["buy_back"].items():
            buy_back.labels(year).set(float(figures["rate"]))
        debt = gauge("debt_pence", "Outstanding invoice balances by age, pence.", ("age",))
        for age, pence in picture["debt_pence"].items():
            if age != "total":
                debt.labels(age).set(pence)
        gauge("members", "Current members billing knows of.").set(picture["members"])
        self._computed.set_to_current_time()
