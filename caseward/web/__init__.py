"""The web app (``caseward web``): the developers' portal and the providers' webhooks."""
