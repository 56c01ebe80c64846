"""One worker pass from the service (``segmenta worker --once``): due refreshes and expiry."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter

from segmenta.interfaces.api.auth import RunWorker
from segmenta.interfaces.api.errors import RESPONSES
from segmenta.services.worker import Worker

router = APIRouter(prefix="/api/worker", tags=["worker"], responses=RESPONSES)


@router.post("/run")
def run_once(ctx: RunWorker) -> dict[str, Any]:
    """Refresh every due segment and mark unused ones expired; what was done."""
    worker = Worker(ctx.service.ws.path, store_url=ctx.service.store_url)
    try:
        report = worker.run_once()
    finally:
        worker.close()
    ctx.audit_detail = f"refreshed={len(report.refreshed)} expired={len(report.expired)} failed={len(report.failed)}"
    return {
        "refreshed": [asdict(r) for r in report.refreshed],
        "expired": report.expired,
        "failed": [{"name": n, "message": m} for n, m in report.failed],
        "skipped": report.skipped,
    }
