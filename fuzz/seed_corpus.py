"""Write every conformance case as its own file under fuzz/corpus/decide (the fuzz seeds)."""
import json, pathlib

root = pathlib.Path(__file__).resolve().parent.parent
out = root / "fuzz" / "corpus" / "decide"
out.mkdir(parents=True, exist_ok=True)
count = 0
for path in sorted((root / "tests" / "conformance").rglob("*.json")):
    data = json.loads(path.read_text())
    for case in data if isinstance(data, list) else [data]:
        (out / f"{count:04}.json").write_text(json.dumps(case))
        count += 1
print(f"{count} seeds in {out}")
