"""What a lead reads in the Prefect UI: installed as the package data ``flows.templates``."""
