"""Every synthesized template passes cfn-lint; every function fits Lambda's 250 MiB unzipped limit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from stacks.layers import directory_size
from tests.infra.conftest import Synthesized

LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024


def _templates(synthesized: Synthesized) -> list[Path]:
    return sorted(synthesized.outdir.glob("assembly-*/*.template.json"))


def test_cfn_lint_finds_no_errors(synthesized: Synthesized) -> None:
    templates = _templates(synthesized)
    assert len(templates) == 6  # 3 environments x (stateful, platform)
    # W3005 is CDK's redundant DependsOn; everything else, and every error, fails the test.
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "cfn-lint"),
            "--ignore-checks",
            "W3005",
            "--format",
            "parseable",
            *map(str, templates),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_function_with_its_layers_fits_the_unzipped_limit(synthesized: Synthesized) -> None:
    sizes = []
    for template_path in _templates(synthesized):
        template = json.loads(template_path.read_text())
        resources = template["Resources"]

        def asset_size(resource: dict, base: Path = template_path.parent) -> int:
            return directory_size((base / resource["Metadata"]["aws:asset:path"]).resolve())

        for logical_id, resource in resources.items():
            if resource["Type"] != "AWS::Lambda::Function" or "aws:asset:path" not in resource.get("Metadata", {}):
                continue
            total = asset_size(resource)
            for layer in resource["Properties"].get("Layers", []):
                total += asset_size(resources[layer["Ref"]])
            sizes.append((template_path.parent.name, logical_id, total))
    assert sizes
    for assembly, logical_id, total in sizes:
        print(f"{assembly} {logical_id}: {total / 2**20:.1f} MiB unzipped (function + layers)")
    too_big = [(a, f, round(t / 2**20, 1)) for a, f, t in sizes if t > LAMBDA_UNZIPPED_LIMIT]
    assert not too_big, f"over Lambda's 250 MiB unzipped limit: {too_big}"
