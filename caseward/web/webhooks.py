"""Webhooks of the e-mail provider (the SendGrid Event Webhook); routes added by issue 11."""

from fastapi import APIRouter

router = APIRouter()
