"""A register file that is not readable CSV is a ValueError (the routes' 400 on `_body`), never a 500."""
from __future__ import annotations

import pytest

from membership.service_layer import handlers

LINKS_HEADER = "URN,LinkURN,LinkType,LinkEstablishedDate\n"


@pytest.mark.parametrize("read", [handlers.read_register_csv, lambda text: handlers.import_links(None, text)])
def test_a_bare_carriage_return_is_a_value_error_not_a_csv_error(read):
    # The fuzzer's find: `\rÁ` raised csv.Error ("new-line character seen in unquoted field"), a 500.
    with pytest.raises(ValueError):
        read("\rÁ")


@pytest.mark.parametrize("read", [handlers.read_register_csv, lambda text: handlers.import_links(None, text)])
def test_a_nul_character_is_refused_by_name(read):
    with pytest.raises(ValueError, match="NUL character"):
        read(LINKS_HEADER + "100001,100002,Successor,2020-01-01\x00\n")
