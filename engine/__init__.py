"""The outside of a run: settings, the connection to Temporal, the local dev stack and the
client API that every front door (CLI, REST API, `WorkflowEngine`, users' programs) uses."""
