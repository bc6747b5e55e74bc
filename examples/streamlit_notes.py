"""A small Streamlit app on dynorm: notes on boards, cached reads, writes that invalidate them.

Run it with `streamlit run examples/streamlit_notes.py`, with `.streamlit/secrets.toml`:

    [connections.dynorm]
    table_name = "notes"
    endpoint_url = "http://localhost:8000"   # DynamoDB Local (`dynorm local`); omit for AWS

docs/contrib/streamlit.md runs it headless with streamlit.testing.v1.AppTest.
"""

from __future__ import annotations

import streamlit as st

import dynorm
from dynorm import Model, fields
from dynorm.contrib.streamlit import DynormConnection


class Note(Model):
    board: str
    id: str = fields.ULID()
    text: str

    class Meta:
        pk = "BOARD#{board}"
        sk = "NOTE#{id}"


conn = st.connection("dynorm", type=DynormConnection, ttl=60)


@st.cache_resource
def create_table(table: str) -> None:
    """Create the table (once per process; idempotent anyway)."""
    with dynorm.using(conn.table):
        dynorm.create_table()


create_table(conn.table.name)
st.title("Notes")
board = st.text_input("Board", "inbox")
text = st.text_input("New note")
if st.button("Add") and text:
    conn.save(Note(board=board, text=text))  # a write through the connection: cache cleared
notes = conn.query(Note.objects.filter(board=board))  # cached for 60 s
st.write(f"{len(notes)} note(s) on {board}")
for note in notes:
    st.write(f"- {note.text}")
