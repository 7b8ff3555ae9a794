"""The web app: the developers' portal and the providers' webhooks."""
