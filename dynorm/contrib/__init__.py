"""Optional integrations of dynorm.

`dynorm.contrib.repository`: CRUD repositories (e.g. behind a FastAPI app);
`dynorm.contrib.streamlit`: a Streamlit connection (extra `dynorm[streamlit]`).
"""
