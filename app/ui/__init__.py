"""The PoseStyle Streamlit app (``posestyle app``): Search, Explore, Evaluate and Index pages.

The pages hold no business logic: they call ``app.services.analysis.AppService`` (which calls
``retrieval/`` and ``encoder/``) and draw the results with ``app.ui.figures``. ``posestyle app`` starts
the server through ``app.ui.serve``, which imports the service layer while the server comes up.
"""
