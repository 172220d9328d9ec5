"""Pure, deterministic code: the definition model, validation, templates and the interpreter."""
