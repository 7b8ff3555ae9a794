"""Every word a developer reads: installed as the package data ``cases.email.templates``."""
