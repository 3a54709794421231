"""Index page: index versions (encoder, type, count, status; the live one marked), starting a
re-index in the background (paths under the data root only; no form when the app is read-only)
and watching its progress in the jobs table."""
from __future__ import annotations

from typing import Any

import streamlit as st

from app.services.server_paths import allowed_server_path
from app.ui.state import app_config, page_guard, service, show_no_index
from encoder.data.errors import one_line
from retrieval.jobs import INDEX_TYPES

POLL_SECONDS = 2.0
WAS_RUNNING_KEY = "index-job-was-running"


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def _versions_table() -> None:
    svc = service()
    versions = svc.index_versions()
    if not versions:
        show_no_index(app_config().root)
        return
    models = svc.encoder_names()
    live = svc.live_pointer()
    st.dataframe([{
        "live": "live" if v.version == live else "",
        "version": v.version,
        "encoder": f"{models.get(v.encoder_version, '?')} {v.encoder_version}",
        "type": v.spec,
        "count": v.count,
        "status": v.status,
        "created": _when(v.created),
        "promoted": _when(v.promoted_at),
        "message": v.message or "",
    } for v in versions], hide_index=True, key="versions-table")


def _jobs_table() -> bool:
    """The re-index jobs with progress; True while one is running."""
    svc = service()
    for launch in svc.launches():
        if launch.error:
            st.error(f"Re-index {launch.launch_id} failed: {launch.error}")
        elif launch.job_id is not None:
            st.caption(f"Re-index {launch.launch_id} finished (job {launch.job_id[:8]}); "
                       f"live version {launch.live_version}.")
    jobs = svc.jobs()
    if not jobs:
        st.caption("No re-index jobs yet.")
        return any(launch.running for launch in svc.launches())
    running = [j for j in jobs if j.status == "running"]
    for job in running:
        fraction = job.done / job.total if job.total else 0.0
        st.progress(min(1.0, fraction), text=f"job {job.id[:8]}: {job.done}/{job.total} sequences"
                                             f" - {job.message or 'running'}")
    st.dataframe([{
        "job": j.id[:8], "status": j.status, "encoder": j.encoder_version or "",
        "progress": f"{j.done}/{j.total}", "errors": j.error_count, "index version": j.index_version or "",
        "message": j.message or "", "started": _when(j.started), "finished": _when(j.finished),
        "heartbeat": _when(j.heartbeat),
    } for j in jobs], hide_index=True, key="jobs-table")
    return bool(running) or any(launch.running for launch in svc.launches())


def _reindex_form() -> None:
    svc = service()
    with st.form("reindex-form"):
        checkpoint = st.text_input("Encoder checkpoint (.safetensors)", value=svc.default_checkpoint() or "",
                                   key="reindex-checkpoint")
        dataset = st.text_input("Dataset cache to register first (optional; new sequences are added)",
                                value="", key="reindex-dataset")
        index_type = st.selectbox("Index type", INDEX_TYPES, key="reindex-type")
        submitted = st.form_submit_button("Start re-index", type="primary")
    if submitted:
        if not checkpoint.strip():
            st.error("Give the encoder checkpoint to embed with.")
            return
        try:
            registered = [e.checkpoint_path for e in svc.store.list_encoders()] if svc.has_store() else []
            checkpoint_path = allowed_server_path(checkpoint, svc.root, "checkpoint", registered)
            dataset_path = allowed_server_path(dataset, svc.root, "dataset") if dataset.strip() else None
            launch = svc.start_reindex(checkpoint_path, dataset_path, index_type)
        except Exception as err:  # noqa: BLE001 - shown as one line
            st.error(one_line(err))
        else:
            st.success(f"Re-index {launch.launch_id} started; progress below.")


def _jobs_panel() -> None:
    """The jobs table; while a job runs it polls every few seconds (only this panel reruns), and
    when the job ends the whole page reruns so the versions table shows the new live version."""
    with page_guard():
        running = _jobs_table()
        if st.session_state.get(WAS_RUNNING_KEY) and not running:
            st.session_state[WAS_RUNNING_KEY] = False
            st.rerun()
        st.session_state[WAS_RUNNING_KEY] = running


def render() -> None:
    st.title("Index versions and jobs")
    st.subheader("Versions")
    _versions_table()
    st.subheader("Re-index")
    if app_config().read_only:
        st.info("This app is read-only: re-indexing is off. Run `posestyle reindex` on the server.")
    else:
        _reindex_form()
    st.subheader("Jobs")
    svc = service()
    polling = any(j.status == "running" for j in svc.jobs()) or any(launch.running for launch in svc.launches())
    st.fragment(_jobs_panel, run_every=POLL_SECONDS if polling else None)()


with page_guard():
    render()
