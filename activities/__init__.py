"""Everything that touches the world: LLM providers, definition files, actions."""
