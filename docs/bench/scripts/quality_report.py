#!/usr/bin/env python3
"""The comparison of docs/QUALITY.md ("The three papers compared") from the JSON files of
vkmix-eval runs: a Markdown table and two SVG charts (KL against effective bits, passkey
accuracy against effective bits), one line per method.

  quality_report.py PLAN.tsv RESULTS_DIR OUT_PREFIX

PLAN.tsv: budget, method, spec (tab separated; '#' lines are comments), as
docs/bench/quality-2026-12-02/plan.tsv. RESULTS_DIR holds vkmix-eval -o files: ev_kl_*.json
(text: PPL, KL, top-1) and ev_niah_*.json (passkey). Several files may each carry part of
the caches (each with its own f16 reference: the reference's numbers must agree). Writes
OUT_PREFIX.md, OUT_PREFIX-kl.svg, OUT_PREFIX-passkey.svg and OUT_PREFIX.json."""
import glob
import json
import math
import os
import re
import sys


def label_of(spec):
    """vkmix-eval's label of a --kv item: a profile is named by its file name."""
    base, _, opts = spec.partition(':')
    if base.endswith('.json'):
        return os.path.basename(base) + (':' + opts if opts else '')
    return spec


def load(pattern):
    """Caches by name over every file; a cache in several files (passkey runs with different
    seeds: ev_niah_s<seed>_<g>.json) has its answers joined. Every file carries its own f16
    reference: those of one seed must agree, those of several seeds are joined too."""
    caches, refs, meta = {}, {}, None
    for f in sorted(glob.glob(pattern)):
        d = json.load(open(f))
        meta = meta or d
        m = re.search(r'_s(\d+)_', os.path.basename(f))
        seed = m.group(1) if m else ''
        for c in d['caches']:
            if c.get('reference'):
                r = refs.get(seed)
                if r is None:
                    refs[seed] = c
                else:  # every process ran the same reference: it must agree
                    for k in ('ppl', 'niah_accuracy'):
                        if k in c and c[k] != r.get(k):
                            raise SystemExit('%s: the f16 reference differs from another file (%s)' % (f, k))
                continue
            old = caches.get(c['name'])
            if old is not None and 'niah_answers' in c:
                old['niah_answers'] = old.get('niah_answers', []) + c['niah_answers']
            else:
                caches[c['name']] = c
    ref = None
    for seed in sorted(refs):
        if ref is None:
            ref = dict(refs[seed])
        elif 'niah_answers' in refs[seed]:
            ref['niah_answers'] = ref.get('niah_answers', []) + refs[seed]['niah_answers']
    return ref, caches, meta


def wilson(k, n, z=1.96):
    if n == 0:
        return 0.0, 0.0
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return c - h, c + h


def passkey(c):
    """(correct, trials) over every depth."""
    ans = c.get('niah_answers') or []
    if ans and isinstance(ans[0], dict) and 'ok' in ans[0]:
        return sum(1 for a in ans if a['ok']), len(ans)
    return None


# ---------------------------------------------------------------- charts

COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22',
          '#17becf', '#393b79', '#637939']


def svg_chart(path, title, ylabel, series, logy, refline=None):
    """series: [(method, [(x, y, lo, hi)])]; lines join a method's points in x order."""
    W, H, L, R, T, B = 860, 480, 80, 250, 40, 50
    xs = [p[0] for _, pts in series for p in pts]
    ys = [v for _, pts in series for p in pts for v in (p[1], p[2], p[3]) if v is not None and (v > 0 or not logy)]
    if refline is not None:
        ys.append(refline)
    x0, x1 = min(xs) - 0.05, max(xs) + 0.05
    if logy:
        y0, y1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    else:
        y0, y1 = 0.0, max(100.0, max(ys))

    def X(x):
        return L + (x - x0) / (x1 - x0) * (W - L - R)

    def Y(y):
        v = (math.log10(y) - y0) / (y1 - y0) if logy else (y - y0) / (y1 - y0)
        return H - B - v * (H - T - B)

    o = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">' % (W, H),
         '<rect width="100%" height="100%" fill="white"/>',
         '<text x="%d" y="22" font-size="14">%s</text>' % (L, title)]
    # axes and grid
    o.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (L, H - B, W - R, H - B))
    o.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (L, T, L, H - B))
    t = math.ceil(x0 * 4) / 4
    while t <= x1:
        o.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>' % (X(t), T, X(t), H - B))
        o.append('<text x="%.1f" y="%d" text-anchor="middle">%.2f</text>' % (X(t), H - B + 16, t))
        t += 0.25
    if logy:
        for e in range(int(y0), int(y1) + 1):
            o.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' % (L, Y(10 ** e), W - R, Y(10 ** e)))
            o.append('<text x="%d" y="%.1f" text-anchor="end">1e%d</text>' % (L - 6, Y(10 ** e) + 4, e))
    else:
        for v in range(0, int(y1) + 1, 10):
            o.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' % (L, Y(v), W - R, Y(v)))
            o.append('<text x="%d" y="%.1f" text-anchor="end">%d%%</text>' % (L - 6, Y(v) + 4, v))
    o.append('<text x="%d" y="%d" text-anchor="middle">effective bits per element, (K + V) / 2 (codes, scales, '
             'maps, window, everything)</text>' % ((L + W - R) // 2, H - 12))
    o.append('<text x="18" y="%d" transform="rotate(-90 18 %d)" text-anchor="middle">%s</text>' % (
        (T + H - B) // 2, (T + H - B) // 2, ylabel))
    if refline is not None:
        o.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="black" stroke-dasharray="6 4"/>' % (
            L, Y(refline), W - R, Y(refline)))
        o.append('<text x="%d" y="%.1f">f16 cache</text>' % (L + 6, Y(refline) - 5))
    series = [(n, sorted(p for p in pts if p[1] is not None and (p[1] > 0 or not logy))) for n, pts in series]
    series = [(n, pts) for n, pts in series if pts]
    for i, (name, pts) in enumerate(series):
        col = COLORS[i % len(COLORS)]
        if len(pts) > 1:
            o.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' % (
                col, ' '.join('%.1f,%.1f' % (X(p[0]), Y(p[1])) for p in pts)))
        for p in pts:
            if p[2] is not None and p[3] is not None:
                o.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1"/>' % (
                    X(p[0]), Y(max(p[2], 1e-12) if logy else p[2]), X(p[0]), Y(p[3]), col))
            o.append('<circle cx="%.1f" cy="%.1f" r="4" fill="%s"/>' % (X(p[0]), Y(p[1]), col))
        ly = T + 14 + 18 * i
        o.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>' % (W - R + 10, ly - 4, W - R + 34,
                                                                                             ly - 4, col))
        o.append('<text x="%d" y="%d">%s</text>' % (W - R + 40, ly, name.replace('&', '&amp;')))
    o.append('</svg>')
    open(path, 'w').write('\n'.join(o) + '\n')


# ---------------------------------------------------------------- main

def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    plan_path, rdir, out = sys.argv[1:]
    plan = []
    for line in open(plan_path):
        if line.startswith('#') or not line.strip():
            continue
        b, m, s = line.rstrip('\n').split('\t')
        plan.append((b, m, s))
    kref, kl, kmeta = load(os.path.join(rdir, 'ev_kl_*.json'))
    nref, nh, nmeta = load(os.path.join(rdir, 'ev_niah_*.json'))
    rows = []
    for b, m, s in plan:
        lab = label_of(s)
        if s == 'f16':
            k, n = kref or {}, nref or {}
        else:
            k, n = kl.get(lab, {}), nh.get(lab, {})
        src = k or n
        if not src:
            print('missing:', lab, file=sys.stderr)
            continue
        bits = (src['k_bits'] + src['v_bits']) / 2
        pk = passkey(n) if n else None
        rows.append(dict(budget=b, method=m, spec=s, label=lab, k_bits=src['k_bits'], v_bits=src['v_bits'], bits=bits,
                         ppl=k.get('ppl'), kl_mean=k.get('kl_mean', 0.0 if s == 'f16' else None),
                         kl_p99=k.get('kl_p99', 0.0 if s == 'f16' else None),
                         top1=k.get('top1_agreement', 1.0 if s == 'f16' else None),
                         passkey_ok=pk[0] if pk else None, passkey_n=pk[1] if pk else None,
                         niah_depths=n.get('niah_accuracy')))
    ref_ppl = kref.get('ppl') if kref else None
    # random layers: one row of mean and sd
    rnd = [r for r in rows if r['method'] == 'random layers']
    md = ['| budget | method | cache | K / V bits | avg bits | PPL | ΔPPL | KL mean | KL p99 | top-1 | passkey |',
          '|---|---|---|---|---|---|---|---|---|---|---|']

    def f(v, fmt):
        return fmt % v if v is not None else '-'
    for r in rows:
        pk = '-'
        if r['passkey_n']:
            lo, hi = wilson(r['passkey_ok'], r['passkey_n'])
            pk = '%.1f%% (%d/%d; %.0f-%.0f)' % (100 * r['passkey_ok'] / r['passkey_n'], r['passkey_ok'], r['passkey_n'],
                                                100 * lo, 100 * hi)
        dppl = 100 * (r['ppl'] / ref_ppl - 1) if r['ppl'] and ref_ppl else None
        md.append('| %s | %s | `%s` | %.2f / %.2f | %.2f | %s | %s | %s | %s | %s | %s |' % (
            r['budget'], r['method'], r['label'], r['k_bits'], r['v_bits'], r['bits'], f(r['ppl'], '%.3f'),
            f(dppl, '%+.2f%%'), f(r['kl_mean'], '%.2e'), f(r['kl_p99'], '%.2e'),
            f(100 * r['top1'] if r['top1'] is not None else None, '%.2f%%'), pk))
    if rnd and all(r['kl_mean'] is not None for r in rnd):
        ks = [r['kl_mean'] for r in rnd]
        mu = sum(ks) / len(ks)
        sd = math.sqrt(sum((x - mu) ** 2 for x in ks) / max(1, len(ks) - 1))
        md.append('')
        md.append('Random layers (%d seeds): KL mean %.2e ± %.2e (sd)' % (len(ks), mu, sd) + (
            ', passkey %.1f%% ± %.1f' % (
                sum(100 * r['passkey_ok'] / r['passkey_n'] for r in rnd) / len(rnd),
                math.sqrt(sum((100 * r['passkey_ok'] / r['passkey_n'] -
                               sum(100 * q['passkey_ok'] / q['passkey_n'] for q in rnd) / len(rnd)) ** 2
                              for r in rnd) / max(1, len(rnd) - 1))) if all(r['passkey_n'] for r in rnd) else ''))
    open(out + '.md', 'w').write('\n'.join(md) + '\n')
    json.dump(dict(rows=rows, ref_ppl=ref_ppl, text=(kmeta or {}).get('text'), niah=(nmeta or {}).get('niah')),
              open(out + '.json', 'w'), indent=1)
    # charts: one line per method (random layers: their mean point)
    methods = []
    for r in rows:
        if r['budget'] != 'ref' and r['method'] not in methods:
            methods.append(r['method'])

    def series(key):
        out_s = []
        for m in methods:
            rs = [r for r in rows if r['method'] == m and r['budget'] != 'ref']
            if m == 'random layers' and rs:
                vals = [key(r) for r in rs if key(r) is not None]
                if vals:
                    mu = sum(v[0] for v in vals) / len(vals)
                    out_s.append((m + ' (mean, %d seeds)' % len(vals),
                                  [(rs[0]['bits'], mu, min(v[0] for v in vals), max(v[0] for v in vals))]))
                continue
            if m == 'uniform':  # the extra uniform points (k2v3, k4v2) are their own series
                pass
            pts = [(r['bits'],) + key(r) for r in rs if key(r) is not None]
            out_s.append((m, pts))
        return out_s

    def kl_key(r):
        return (r['kl_mean'], None, None) if r['kl_mean'] else None

    def pk_key(r):
        if not r['passkey_n']:
            return None
        lo, hi = wilson(r['passkey_ok'], r['passkey_n'])
        return (100 * r['passkey_ok'] / r['passkey_n'], 100 * lo, 100 * hi)
    model = os.path.basename((kmeta or nmeta or {}).get('model', ''))
    svg_chart(out + '-kl.svg', 'KL(f16 || cache) against effective bits, %s, 2048 tokens' % model,
              'mean KL per token (log scale)', series(kl_key), True)
    f16pk = None
    for r in rows:
        if r['spec'] == 'f16' and r['passkey_n']:
            f16pk = 100 * r['passkey_ok'] / r['passkey_n']
    svg_chart(out + '-passkey.svg', 'passkey accuracy against effective bits, %s, 2048 tokens (95%% Wilson)' % model,
              'passkey accuracy', series(pk_key), False, f16pk)


if __name__ == '__main__':
    main()
