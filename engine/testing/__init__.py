"""Test files (`starter.py test`, `record`): cases with scripted replies run through the real
workflow on the dev server.

Modules: files (reading test and reply files, located errors), runner (running a case and
checking what it expects), report (one line per case, JUnit, JSON), recorder (a finished run
as a test case), command (all of it, for the CLI and CI)."""
