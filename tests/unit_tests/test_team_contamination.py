"""``data/team/contamination.py`` drops written lines that coincide with evaluation rows."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "data" / "team" / "contamination.py"


def _jsonl(path: Path, texts: list[str]) -> Path:
    rows = [{"text": t, "label": "Law", "style": "conversational"} for t in texts]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def test_exact_near_and_repeated_lines_are_dropped(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    (shared / "kmmlu").mkdir(parents=True)
    (shared / "synthetic").mkdir()
    test_question = "민법상 채권자대위권을 행사하기 위한 요건으로 옳지 않은 것은?"
    (shared / "kmmlu" / "Law-test.csv").write_text(
        f"question,answer,A,B,C,D\n{test_question},1,a,b,c,d\n", "utf-8"
    )
    _jsonl(shared / "synthetic" / "law.jsonl", ["근저당권 설정 등기는 어떻게 하나요?"])
    written = _jsonl(
        tmp_path / "new.jsonl",
        [
            "근저당권 설정  등기는 어떻게 하나요?",  # a synthetic question, spaced otherwise
            "민법상 채권자대위권을 행사하기 위한 요건으로 옳은 것은?",  # near a KMMLU test row
            "소멸시효 중단 사유에는 무엇이 있나요?",
            "소멸시효 중단 사유에는 무엇이 있나요?",  # repeated
            "형법상 정당방위의 성립 요건을 알려 주세요",
        ],
    )
    out = tmp_path / "kept.jsonl"
    result = subprocess.run(  # noqa: S603 - this repository's own script
        [sys.executable, str(SCRIPT), str(shared), str(written), "--out", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    kept = [json.loads(line)["text"] for line in out.read_text("utf-8").splitlines()]
    assert kept == [
        "소멸시효 중단 사유에는 무엇이 있나요?",
        "형법상 정당방위의 성립 요건을 알려 주세요",
    ]
    assert "kept 2" in result.stdout
    assert "'exact': 1" in result.stdout and "'near': 1" in result.stdout
    assert "'duplicate': 1" in result.stdout
