import pytest

from bot.phones import check_uk_phone


@pytest.mark.parametrize("phone", ["01452 426565", "+44 1452 426565", "0800 1111", None])
def test_dialable_numbers_pass_unchanged(phone):
    assert check_uk_phone(phone) == phone


@pytest.mark.parametrize("phone", ["999", "111"])
def test_three_digit_short_codes_only_where_allowed(phone):
    assert check_uk_phone(phone, short_codes=True) == phone
    with pytest.raises(ValueError, match="not a UK phone number"):
        check_uk_phone(phone)


@pytest.mark.parametrize("phone", ["", "call us", "01452-426565", "0145 ext 2", "1" * 30, "01452 426565 "])
def test_numbers_nobody_can_dial_are_refused(phone):
    with pytest.raises(ValueError, match="not a UK phone number"):
        check_uk_phone(phone, short_codes=True)
