#!/usr/bin/env python3
"""Mutation fuzzer for everything gradc reads from a user.

Takes valid inputs (the repository's model files, IR files, a generated
IDX set, CSV file and checkpoint), mutates them (bytes flipped, inserted,
deleted, truncated; tokens and numbers swapped in) and runs gradc on each.
A finding is a run killed by a signal, an abort message (assertion, LLVM
fatal error, uncaught exception) or a run still going after 30 s; the
input is kept under OUT/ for a regression test.  Exit status 1 when
anything was found.

    test/fuzz/fuzz.py KIND SECONDS [--seed=N] [--out=DIR]
    KIND: model | ir | idx | csv | checkpoint

Not part of the test command (it runs for as long as it is told); the
README says what it has found so far.
"""
import argparse
import glob
import gzip
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GRADC = os.path.join(ROOT, 'build', 'bin', 'gradc')
INPUTS = os.path.join(ROOT, 'test', 'lit', 'cli', 'Inputs')
MODEL = os.path.join(INPUTS, 'tiny_classifier.grad')
TOKENS = [b'(', b')', b'{', b'}', b'[', b']', b',', b'=', b':', b'@', b'^T', b'-', b'1e309', b'0',
          b'-1', b'99999999999999999999', b'f32', b'i32', b'batch', b'block', b'model', b'param',
          b'out', b'x', b'%0', b'\n', b'"', b'#', b'\xff', b'nan', b'inf', b'0.0', b'1.5', b'relu',
          b'dense', b'repeat', b'train', b'dropout', b'loss', b'weight_decay', b'reshape', b'matmul',
          b'loc(', b'"a.grad":1:1)', b'2147483648', b'9223372036854775808', b'*', b'x 3', b'...']
NUMBERS = [b'0', b'1', b'-5', b'100000000', b'4294967297', b'1e30', b'65536']
PASSES = ['verify', 'simplify', 'dropout,l2,autodiff', 'autodiff,optimizer,simplify', 'sink-maps',
          'recompute-masks', 'dropout,l2,autodiff,optimizer,simplify,sink-maps,recompute-masks']


def mutate_text(rng, data):
    """Edits that keep most of a text file's structure."""
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        pos = rng.randint(0, len(data))
        if op < 0.25 and data:
            del data[pos:pos + rng.randint(1, 20)]
        elif op < 0.55:
            data[pos:pos] = rng.choice(TOKENS)
        elif op < 0.7 and data:
            start = rng.randrange(len(data))
            data[pos:pos] = data[start:start + rng.randint(1, 200)]
        elif op < 0.85:
            numbers = list(re.finditer(rb'\d+(\.\d+)?', bytes(data)))
            if numbers:
                m = rng.choice(numbers)
                data[m.start():m.end()] = rng.choice(NUMBERS)
        else:
            data = data[:rng.randint(0, len(data))]
    return bytes(data)


def mutate_bytes(rng, data):
    """Edits of a binary file, its header more often than the rest."""
    data = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        if not data:
            break
        op = rng.random()
        pos = rng.randrange(len(data))
        if op < 0.4:
            if rng.random() < 0.6:
                pos = rng.randint(0, min(len(data) - 1, 40))
            data[pos] = rng.choice([0, 1, 0xff, 0x7f, 0x80, rng.randint(0, 255)])
        elif op < 0.6:
            data = data[:pos]
        elif op < 0.8:
            data[pos:pos] = bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 16)))
        else:
            del data[pos:pos + rng.randint(1, 64)]
    return bytes(data)


def finding(result):
    """Why a finished run is a finding, or None."""
    if result.returncode < 0 or result.returncode >= 128:
        return 'killed by signal (status %d)' % result.returncode
    err = result.stderr.decode('utf-8', 'replace')
    match = re.search(r'terminate called|Assertion|LLVM ERROR|Stack dump|what\(\)', err)
    if match:
        return 'aborted: ' + err[max(0, match.start() - 80):match.start() + 200]
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('kind', choices=['model', 'ir', 'idx', 'csv', 'checkpoint'])
    parser.add_argument('seconds', type=float)
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--out', default=os.path.join(tempfile.gettempdir(), 'gradc-fuzz'))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix='gradc-fuzz-')
    env = dict(os.environ, GRADC_CACHE_DIR=os.path.join(work, 'cache'))
    valid = os.path.join(work, 'valid')
    os.makedirs(valid)
    os.makedirs(args.out, exist_ok=True)

    corpus = []
    if args.kind == 'model':
        patterns = ['examples/*.grad', 'bench/models/*.grad', 'test/lit/frontend/*.grad']
    elif args.kind == 'ir':
        patterns = ['test/lit/**/*.gir']
    else:
        patterns = []
        subprocess.run([sys.executable, os.path.join(INPUTS, 'make_idx.py'), valid, '40', '8', '3'],
                       check=True)
        rows = ''.join(','.join(str((i * j) % 7 / 7) for j in range(8)) + ',' + str(i % 3) + '\n'
                       for i in range(32))
        with open(os.path.join(valid, 'train.csv'), 'w') as f:
            f.write('a,b,c,d,e,f,g,h,cls\n' + rows)
        subprocess.run([GRADC, 'train', MODEL, '--data=idx:' + valid, '--epochs=1',
                        '--save=' + os.path.join(valid, 'weights.st')],
                       check=True, capture_output=True, env=env)
    for pattern in patterns:
        for path in glob.glob(os.path.join(ROOT, pattern), recursive=True):
            with open(path, 'rb') as f:
                corpus.append(f.read())
    idx_files = sorted(f for f in os.listdir(valid) if 'ubyte' in f)

    runs = found = 0
    end = time.time() + args.seconds
    case = os.path.join(work, 'case')
    while time.time() < end:
        shutil.rmtree(case, ignore_errors=True)
        os.makedirs(case)
        if args.kind in ('model', 'ir'):
            name = os.path.join(case, 'input.grad' if args.kind == 'model' else 'input.gir')
            with open(name, 'wb') as f:
                f.write(mutate_text(rng, rng.choice(corpus)))
            if args.kind == 'model':
                stage = rng.choice(['parsed', 'train', 'optimized', 'inference', 'memory'])
                commands = [[GRADC, 'check', name], [GRADC, 'show', name, '--stage=' + stage]]
            else:
                commands = [[GRADC, 'opt', name, '--pass=' + rng.choice(PASSES)]]
        elif args.kind == 'idx':
            for f in idx_files:
                shutil.copy(os.path.join(valid, f), case)
            victim = rng.choice(idx_files)
            with open(os.path.join(valid, victim), 'rb') as f:
                raw = f.read()
            if victim.endswith('.gz') and rng.random() < 0.7:
                raw = gzip.compress(mutate_bytes(rng, gzip.decompress(raw)))
            else:
                raw = mutate_bytes(rng, raw)
            with open(os.path.join(case, victim), 'wb') as f:
                f.write(raw)
            commands = [[GRADC, 'train', MODEL, '--data=idx:' + case, '--epochs=1']]
        elif args.kind == 'csv':
            with open(os.path.join(valid, 'train.csv'), 'rb') as f:
                text = mutate_text(rng, f.read())
            if rng.random() < 0.3:
                text = text.replace(b'0.', rng.choice([b'1e39', b'nan', b'-inf', b'0x1p3', b'', b' ']),
                                    rng.randint(1, 3))
            name = os.path.join(case, 'train.csv')
            with open(name, 'wb') as f:
                f.write(text)
            commands = [[GRADC, 'train', MODEL, '--data=csv:%s,%s' % (name, name), '--label=cls',
                         '--epochs=1']]
        else:
            with open(os.path.join(valid, 'weights.st'), 'rb') as f:
                raw = mutate_bytes(rng, f.read())
            name = os.path.join(case, 'weights.st')
            with open(name, 'wb') as f:
                f.write(raw)
            commands = [[GRADC, 'eval', MODEL, '--data=idx:' + valid, '--weights=' + name],
                        [GRADC, 'train', MODEL, '--data=idx:' + valid, '--epochs=2', '--resume=' + name,
                         '--save=' + os.path.join(case, 'out.st')]]
        for command in commands:
            runs += 1
            try:
                why = finding(subprocess.run(command, capture_output=True, timeout=30, env=env))
            except subprocess.TimeoutExpired:
                why = 'still running after 30 s'
            if why:
                found += 1
                keep = os.path.join(args.out, '%s-%d-%d' % (args.kind, args.seed, found))
                shutil.rmtree(keep, ignore_errors=True)
                shutil.copytree(case, keep)
                print('FOUND: %s\n  %s\n  input kept in %s' % (why, ' '.join(command), keep), flush=True)
                break
    shutil.rmtree(work, ignore_errors=True)
    print('%s: %d runs, %d findings' % (args.kind, runs, found))
    return 1 if found else 0


if __name__ == '__main__':
    sys.exit(main())
