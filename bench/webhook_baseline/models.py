"""The model whose creation fires the baseline's webhooks (django-webhook listens to its
``post_save`` signal)."""

from django.db import models


class Order(models.Model):
    """An order; each one created is one webhook per active Webhook subscribed to its topic."""

    number = models.IntegerField()
    amount = models.IntegerField()
    note = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"order {self.number}"
