"""shared.handover: the `function_handed_over` event every service publishes (schema, example)."""
import pytest
from marshmallow import ValidationError

from shared import handover
from shared.envelope import PayloadSchemas


class TestFunctionHandedOver:
    def test_the_example_is_the_agreed_four_fields_and_loads(self):
        example = handover.EXAMPLES[(handover.EVENT_TYPE, 1)]
        assert set(example) == {"function", "from_operator", "to_operator", "effective_date"}
        assert handover.FunctionHandedOverV1().load(example)["function"] == "billing"

    @pytest.mark.parametrize("field,value", [("function", "Billing!"), ("from_operator", ""),
                                             ("effective_date", "1 April")])
    def test_bad_payload_is_refused_naming_the_field(self, field, value):
        payload = {**handover.EXAMPLES[(handover.EVENT_TYPE, 1)], field: value}
        with pytest.raises(ValidationError) as caught:
            handover.FunctionHandedOverV1().load(payload)
        assert field in caught.value.messages

    def test_a_service_adds_it_to_its_published_schemas(self):
        combined = handover.with_handover(PayloadSchemas({("charge_recorded", 1): object()}))
        assert ("charge_recorded", 1) in combined and ("function_handed_over", 1) in combined
