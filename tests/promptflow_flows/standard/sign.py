from promptflow import tool
from promptflow.connections import CustomConnection


@tool
def sign(conn: CustomConnection, text: str = "nothing to sign") -> str:
    key = conn.secrets["key"]
    return f"{text} [signed by {conn.signer}, key of {len(key)} characters]"
