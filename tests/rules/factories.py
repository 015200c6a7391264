import factory

from rules.models import Rule


class RuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rule

    name = factory.Sequence(lambda n: f"Rule {n}")
    conditions = factory.LazyFunction(lambda: {"type": "payment.failed"})
    actions = factory.LazyFunction(lambda: [{"type": "notify", "message": "look"}])
