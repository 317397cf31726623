"""shared.topology: the names of the broker's exchanges and queues, as the services use them."""
from shared import topology


class TestNames:
    def test_a_handler_queue_names_its_source_type_service_and_method(self):
        queue = topology.handler_queue_name("membership", "member_joined", "billing", "on_member_joined")
        assert queue == "evt-membership-member_joined--billing.on_member_joined"
        assert topology.service_of_queue(queue) == "billing"
        assert topology.dead_letter_queue_name(queue) == f"{queue}.dead"

    def test_each_service_has_its_own_exchanges(self):
        assert topology.events_exchange("billing") == "billing.events"
        assert topology.archive_name("billing") == "billing.events.archive"
        assert topology.dead_letter_exchange("billing") == "billing.dead-letter"
        assert topology.requeue_exchange("billing") == "billing.requeue"
        assert topology.retry_name("billing", 5000.0) == "billing.retry.5000ms"

    def test_a_handler_queue_is_declared_as_a_quorum_queue_and_nothing_more(self):
        assert topology.handler_queue_arguments() == {"x-queue-type": "quorum"}
