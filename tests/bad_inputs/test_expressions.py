"""Issue 10 case 4: a bad screening expression refused at plan time, not in the workers."""

from __future__ import annotations

import pytest

from tests.bad_inputs.conftest import BUILD, Workspace


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("PI >>> (3", "screening.expression"),
        ("PI > 3 && ENERGY < 5", "reads column ENERGY, which the EVENTS table lacks"),
        ("#NO_SUCH_MACRO", "macro #NO_SUCH_MACRO is not defined"),
    ],
)
def test_a_bad_screening_expression_is_refused_when_planned(
    ws: Workspace, expression: str, message: str
) -> None:
    extra = f'screening = {{ expression = "{expression}" }}'
    text = BUILD.format(extra="").replace(
        'regions = "obs/ds9.reg"', 'regions = "obs/ds9.reg"\n' + extra
    )
    ws.write_build(text)
    ws.build_refused("observation 0123456789", message)


def test_a_good_expression_on_the_same_file_builds(ws: Workspace) -> None:
    extra = 'screening = { expression = "PI > 3 && (FLAG & 1) == 0" }'
    text = BUILD.format(extra="").replace(
        'regions = "obs/ds9.reg"', 'regions = "obs/ds9.reg"\n' + extra
    )
    ws.write_build(text)
    ws.build_ok()
