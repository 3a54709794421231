"""Evaluate page: cluster quality of the live index (purity, NMI, silhouette, intra/inter-class
distances; k chosen by the user) and the style head's confusion matrix and per-class figures, all
computed by ``encoder.evaluation.metrics`` through ``app.services.analysis``."""
from __future__ import annotations

from typing import Any

import streamlit as st

from app.ui import figures
from app.ui.state import app_config, cluster_quality, live_index, page_guard


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def render() -> None:
    st.title("Evaluate the live index")
    live, live_key = live_index()
    config = app_config()
    default = cluster_quality(config.root, config.store_url, live_key, None)
    styles = default.metrics.embedding.k
    k = st.number_input("k for k-means (default: the number of styles)", min_value=2,
                        max_value=max(2, default.n - 1), value=min(styles, max(2, default.n - 1)), step=1,
                        key="evaluate-k")
    quality = default if int(k) == styles else cluster_quality(config.root, config.store_url, live_key, int(k))
    embedding = quality.metrics.embedding
    classification = quality.classification

    st.subheader("Clusters of the style embeddings")
    cols = st.columns(5)
    cols[0].metric(f"purity (k={quality.k})", _fmt(quality.purity))
    cols[1].metric(f"NMI (k={quality.k})", _fmt(quality.nmi))
    cols[2].metric("silhouette (cosine)", _fmt(embedding.silhouette))
    cols[3].metric("intra-class distance", _fmt(embedding.intra_cos_dist))
    cols[4].metric("inter-class distance", _fmt(embedding.inter_cos_dist))
    loo = quality.metrics.leave_one_out
    st.caption(f"{quality.n} labelled sequences of index version {quality.version} in {styles} styles"
               + (f" ({quality.unlabelled} unlabelled left out)" if quality.unlabelled else "")
               + ". Silhouette and distances use the true styles; distances are cosine (1 - cos). "
               f"Leave-one-out retrieval: precision@5 {_fmt(loo.p(5))}, "
               f"precision@10 {_fmt(loo.p(10))}, mAP {_fmt(loo.map)}.")

    st.subheader("Style head")
    if classification is None:
        st.info(f"No predictions: {live.encoder_problem or 'the encoder could not predict any indexed sequence'}.")
    else:
        c1, c2 = st.columns(2)
        c1.metric("accuracy", _fmt(classification.accuracy))
        c2.metric("macro-F1", _fmt(classification.macro_f1))
        left, right = st.columns(2)
        with left:
            st.markdown("**Confusion matrix** (rows: true style, columns: predicted)")
            st.plotly_chart(figures.confusion_figure(classification.labels, classification.confusion),
                            key="confusion")
        with right:
            st.markdown("**Per-class figures**")
            st.plotly_chart(figures.per_class_figure(classification.per_class), key="per-class")
            rows = [{"style": name, **{m: round(v, 3) if isinstance(v, float) else v
                                       for m, v in scores.to_dict().items()}}
                    for name, scores in classification.per_class.items()]
            st.dataframe(rows, hide_index=True, key="per-class-table")
    if quality.prediction_failures:
        with st.expander(f"{len(quality.prediction_failures)} sequence(s) the style head could not predict"):
            for line in quality.prediction_failures.values():
                st.text(line)


with page_guard():
    render()
