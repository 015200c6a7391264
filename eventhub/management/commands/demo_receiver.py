"""Run the local demo receiver (``eventhub.demo``) until interrupted; ``make up`` starts it."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from eventhub.demo import DemoReceiver, receiver_url


class Command(BaseCommand):
    help = "Receive the demo subscription's webhooks on loopback, checking their signatures."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=None, help="default DEMO_RECEIVER_PORT")

    def handle(self, *args, port: int | None, **options):
        port = settings.DEMO_RECEIVER_PORT if port is None else port
        if not port:
            raise CommandError("DEMO_RECEIVER_PORT is 0: the demo receiver is off")
        server = DemoReceiver(port)
        self.stdout.write(f"Demo receiver at {receiver_url(port=port)} (GET / shows what came)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
