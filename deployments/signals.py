"""Signal receivers of the deployments app (connected in ``apps.DeploymentsConfig.ready``)."""
from __future__ import annotations

import functools

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from deployments.api_keys import api_keys_forget
from deployments.models import ApiKey, Deployment


@receiver([post_save, post_delete], sender=ApiKey)
@receiver([post_save, post_delete], sender=Deployment)
def _forget_cached_api_keys(sender, instance, **kwargs) -> None:
    """The predict endpoint caches keys with their deployment (api_keys.api_key_authenticate):
    drop them now and again on commit (a request may re-cache the old row in between)."""
    if isinstance(instance, ApiKey):
        forget = functools.partial(api_keys_forget, prefixes=[instance.prefix])
    else:
        forget = functools.partial(api_keys_forget, deployment_id=instance.pk)
    forget()
    transaction.on_commit(forget)
