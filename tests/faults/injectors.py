"""Every fault the suite can inject, by name, and the groups of names the command line takes."""

from __future__ import annotations

from clients.proto.orders.v1 import orders_pb2 as pb
from tests.faults.fault import Fault
from tests.faults.mix import Kind
from tests.faults.outages import FrontDoorKill, PartnerOutage, ProcessOutage, ServerCrash
from tests.faults.worker_kills import (
    WorkerKill,
    in_state,
    no_payment_yet,
    no_reservation_yet,
    payment_captured,
    reservation_held,
    shipment_booking,
    stored_not_reserved,
)


def all_faults() -> dict[str, Fault]:
    """Every fault by name, in the order a full run injects them."""
    faults: list[Fault] = [
        WorkerKill("worker-reserve", "reserve_stock", stored_not_reserved, no_reservation_yet),
        WorkerKill(
            "worker-charge",
            "charge_payment",
            in_state(pb.ORDER_STATE_RESERVED, frozenset({Kind.SLOW})),
            no_payment_yet,
        ),
        WorkerKill("worker-commit", "commit_stock", payment_captured, reservation_held),
        WorkerKill(
            "worker-booking",
            "arrange_shipping",
            in_state(pb.ORDER_STATE_SHIPPING),
            shipment_booking,
        ),
        *(
            ProcessOutage(
                name,
                name,
                f"{name} service SIGKILL, restarted after the outage",
                downtime=lambda timing: timing.outage,
            )
            for name in ("payments", "inventory", "shipping")
        ),
        PartnerOutage("payments"),
        ServerCrash("temporal", "Temporal dev server SIGKILL, restarted on its file"),
        ServerCrash("postgres", "Postgres immediate shutdown, restarted on its data"),
        FrontDoorKill(),
    ]
    return {fault.name: fault for fault in faults}


# Names that stand for several faults on the command line.
GROUPS = {
    "all": tuple(all_faults()),
    "worker": ("worker-reserve", "worker-charge", "worker-commit", "worker-booking"),
    "services": ("payments", "inventory", "shipping"),
}


def select(names: list[str]) -> list[Fault]:
    """The faults named (or grouped) in `names`, each once, in the given order."""
    known = all_faults()
    chosen: list[str] = []
    for name in names:
        for member in GROUPS.get(name, (name,)):
            if member not in known:
                raise ValueError(f"unknown fault {member!r}; known: {', '.join(known)}")
            if member not in chosen:
                chosen.append(member)
    return [known[name] for name in chosen]
