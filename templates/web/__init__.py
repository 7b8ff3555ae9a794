"""The portal's pages (package data of ``caseward.web``): every word a developer reads there."""
