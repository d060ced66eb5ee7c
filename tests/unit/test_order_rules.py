"""The order error gate's rules (seed 000): what each finds, and that an error's identity is stable."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.order_rules import DEFAULT_RULES, Order, rule_set, validate_order


def errors(order: dict, **kwargs) -> dict[str, str]:
    return {e.rule: e.message for e in validate_order(Order.model_validate(order), **kwargs)}


CLEAN = {"salesOrderId": "o-1", "orderNumber": "SO-1", "lines": [{"sku": "CHAIR-1", "quantity": 2, "unitPrice": 40}]}


def test_a_clean_order_has_no_errors():
    assert errors(CLEAN) == {}


@pytest.mark.parametrize("change, rule, fragment", [
    ({"orderNumber": ""}, "order_data_present", "no order number"),
    ({"lines": []}, "order_data_present", "no lines"),
    ({"lines": [{"sku": "TUK-SOFA", "discount": 10}], "remarks": "staff"}, "discount_on_tuk_item", "TUK-SOFA has 10%"),
    ({"lines": [{"productName": "TUK lamp", "discountPercent": 12.5}], "remarks": "x"}, "discount_on_tuk_item", "12.5%"),
    ({"lines": [{"sku": "DESK", "discount": 5}]}, "discount_remark", "no discount remark"),
    ({"lines": [{"sku": "DESK", "requiresAssembly": True}]}, "assembly_fee", "Assembly fee missing for DESK"),
    ({"isReturn": True}, "return_reason", "no return reason"),
    ({"lines": [{"sku": "DESK", "quantity": -1}]}, "return_reason", "no return reason"),
])
def test_each_rule_reports_its_problem(change, rule, fragment):
    found = errors({**CLEAN, **change})
    assert fragment in found[rule]


def test_fixing_the_problem_clears_it():
    assert "assembly_fee" not in errors({**CLEAN, "lines": [{"sku": "DESK", "requiresAssembly": True},
                                                            {"sku": "ASSEMBLY-FEE", "unitPrice": 25}]})
    assert "discount_remark" not in errors({**CLEAN, "lines": [{"sku": "DESK", "discount": 5}], "remarks": "loyalty"})
    assert "return_reason" not in errors({**CLEAN, "isReturn": True, "returnReason": "damaged in transit"})


@given(st.decimals(min_value=1, max_value=100, places=1), st.text(max_size=20))
def test_an_errors_hash_depends_on_what_it_is_about_not_on_its_wording(discount, remark):
    base = validate_order(Order.model_validate({**CLEAN, "lines": [{"sku": "TUK-1", "discount": 10}]}))
    other = validate_order(Order.model_validate({**CLEAN, "remarks": remark,
                                                 "lines": [{"sku": "TUK-1", "discount": str(discount)}]}))
    tuk = {e.error_hash for e in base if e.rule == "discount_on_tuk_item"}
    assert tuk == {e.error_hash for e in other if e.rule == "discount_on_tuk_item"}


def test_rules_can_be_switched_off_but_not_misnamed():
    order = {**CLEAN, "lines": [{"sku": "DESK", "discount": 5}]}
    assert errors(order, rules=rule_set(["discount_remark"])) == {}
    with pytest.raises(ValueError, match="unknown order rule"):
        rule_set(["delivery_fee"])
    assert len(rule_set()) == len(DEFAULT_RULES)
