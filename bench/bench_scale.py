"""Scale: import, analyze and export N posts from N/10 generated users.

Run: .venv/bin/python bench/bench_scale.py [--sizes 10000,100000,1000000]
Each stage runs as the real CLI in its own child process, so wall time and
peak memory (max RSS from wait4) are per stage. Issue 9 targets at 1M posts:
analyze under 10 minutes, peak memory under 2 GB. Prints how time grows
with size. Generated text mixes per-community vocabularies so clustering has
real structure to find.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMUNITIES = {
    "健身": "健身 增肌 撸铁 减脂 深蹲 卧推 蛋白粉 有氧 训练 体脂 教练 拉伸 硬拉 肌肉 打卡".split(),
    "咖啡": "咖啡 手冲 拿铁 美式 咖啡豆 烘焙 意式 拉花 咖啡馆 浓缩 风味 酸度 挂耳 冷萃 探店".split(),
    "护肤": "护肤 精华 面霜 防晒 敏感肌 保湿 美白 成分 水乳 面膜 痘痘 卸妆 抗老 毛孔 修护".split(),
    "数码": "手机 相机 耳机 芯片 续航 屏幕 评测 镜头 充电 系统 平板 键盘 显卡 参数 性价比".split(),
    "旅行": "旅行 酒店 机票 景点 攻略 自驾 露营 徒步 民宿 海边 古镇 签证 行程 美食 拍照".split(),
    "游戏": "游戏 副本 开黑 段位 皮肤 抽卡 主机 手游 通关 剧情 版本 联机 装备 角色 竞技".split(),
    "母婴": "宝宝 辅食 奶粉 早教 孕期 育儿 尿不湿 绘本 月子 哄睡 疫苗 辅食机 亲子 宝妈 断奶".split(),
    "篮球": "篮球 投篮 球鞋 比赛 三分 扣篮 球队 季后赛 运球 控卫 篮板 助攻 球场 训练营 实战".split(),
}
FILLER = "今天 真的 觉得 推荐 分享 一下 大家 最近 还是 非常 这个 我们 感觉 终于 周末".split()


def generate(path: Path, n_posts: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    n_users = max(10, n_posts // 10)
    names = list(COMMUNITIES)
    user_comm = [rng.randrange(len(names)) for _ in range(n_users)]
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n_posts):
            u = rng.randrange(n_users)
            comm = names[user_comm[u]] if rng.random() < 0.8 else rng.choice(names)
            words = [rng.choice(COMMUNITIES[comm]) if rng.random() < 0.6 else rng.choice(FILLER) for _ in range(rng.randint(6, 20))]
            text = "".join(words)
            if rng.random() < 0.3:
                text = f"#{comm}日常# {text}"
            fh.write(json.dumps({"id": f"p{i}", "user_id": f"u{u}", "user_name": f"用户{u}", "text": text,
                                 "created_at": f"2026-{rng.randint(1, 10):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00+08:00"},
                                ensure_ascii=False) + "\n")


def stage(db: Path, *args: str) -> tuple[float, float, str]:
    """Run one CLI stage; returns (seconds, peak RSS of that process in MB, last output line)."""
    with tempfile.TemporaryFile("w+", encoding="utf-8") as out, tempfile.TemporaryFile("w+", encoding="utf-8") as err:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "bot", "--db", str(db), *args], stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)  # wait4 gives this child's own rusage
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise SystemExit(f"stage {args[0]} failed ({proc.returncode}): {stderr.strip()[-500:]}")
    last = (stdout.strip().splitlines() or [""])[-1][:100]
    return elapsed, usage.ru_maxrss / 1024, last


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--keep", help="keep the databases in this folder")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="hx-scale-"))
    base.mkdir(parents=True, exist_ok=True)
    results = []
    for n in sizes:
        src, db = base / f"posts-{n}.jsonl", base / f"scale-{n}.db"
        for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            p.unlink(missing_ok=True)
        generate(src, n)
        row = {"posts": n}
        for name, argv in (("import", ("import", str(src))), ("analyze", ("analyze",)),
                           ("export", ("export", "memberships", "-o", str(base / f"members-{n}.csv")))):
            secs, peak, last = stage(db, *argv)
            row[name] = (secs, peak)
            print(f"{n:>9,} posts  {name:<8} {secs:8.1f} s  peak {peak:7.0f} MB   {last}", flush=True)
        results.append(row)
    print("\nsummary (wall seconds / peak MB per stage):")
    for r in results:
        print(f"  {r['posts']:>9,}: " + "  ".join(f"{k} {r[k][0]:.1f}s/{r[k][1]:.0f}MB" for k in ("import", "analyze", "export")))
    for a, b in zip(results, results[1:]):
        print(f"  growth {a['posts']:,} -> {b['posts']:,} posts (x{b['posts'] / a['posts']:.0f}): "
              + "  ".join(f"{k} x{b[k][0] / max(a[k][0], 1e-9):.1f}" for k in ("import", "analyze", "export")))
    if results and results[-1]["posts"] >= 1_000_000:
        big = results[-1]
        print(f"  targets at 1M: analyze {big['analyze'][0]:.0f} s (< 600: {'met' if big['analyze'][0] < 600 else 'NOT met'}), "
              f"peak {max(v[1] for k, v in big.items() if k != 'posts'):.0f} MB (< 2048: "
              f"{'met' if max(v[1] for k, v in big.items() if k != 'posts') < 2048 else 'NOT met'})")


if __name__ == "__main__":
    main()
