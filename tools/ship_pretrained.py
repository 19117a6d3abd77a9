"""Store a finished run as the trained model that ships inside the package (`mst_nb.model.load_pretrained`).

    python tools/ship_pretrained.py RUN --command "python -m mst_nb.train ..."

Writes mst_nb/assets/pretrained.{safetensors,json} (teacher, student, decoder in fp16; config; provenance) and
pretrained_log.csv (the run's log, for the curves). The json records the training command, the run's own k-NN on
its data (and its linear probe, where `python -m mst_nb.eval linear` has run), and the k-NN measured here on the
bundled sample (train → val), with the random-init and raw-pixel baselines on the same split, so the package says
what it ships.
"""
import argparse, shutil, sys, warnings


from mst_nb.data import load_sample
from mst_nb.runs import Run
from mst_nb.model import load_pretrained, save_pretrained
from mst_nb.vit import PRETRAINED
from mst_nb.knn import extract_features, knn_top1, raw_pixel_knn


def sample_knn(backbone, cfg, tr, va) -> float:
    return knn_top1(extract_features(backbone, tr.images, cfg), tr.labels, extract_features(backbone, va.images, cfg),
                    va.labels, cfg.knn_k, cfg.knn_temp)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('run', help='a finished run folder (checkpoint.pt, summary.json, log.csv)')
    ap.add_argument('--command', required=True, help='the command that trained it')
    a = ap.parse_args()
    run = Run(a.run)
    parts, summary = run.trained(), run.summary()
    if summary is None: sys.exit(f'error: {run.path} has not finished (no summary.json)')
    info = dict(command=a.command, data=parts.cfg.data, epochs=parts.cfg.epochs,
                run_knn_top1=summary['knn_top1'], run_knn_random_init=summary['knn_random_init'],
                run_knn_raw_pixels=summary['knn_raw_pixels'])
    if 'linear' in summary:   # its solved linear probe (python -m mst_nb.eval linear), with that probe's baselines
        info['run_linear'] = {k: summary['linear'][k] for k in ('top1', 'random_init_top1', 'raw_pixels_top1', 'solver')}
    save_pretrained(parts, PRETRAINED, info)
    back = load_pretrained()   # what users get: the fp16 weights, read back
    cfg = back.cfg
    size = cfg.decode_size or cfg.global_crop_size
    tr, va = load_sample('train', size=size), load_sample('val', size=size)
    info.update(sample_knn_top1=sample_knn(back.teacher, cfg, tr, va),
                sample_knn_random_init=sample_knn(load_pretrained(random_init=True).teacher, cfg, tr, va),
                sample_knn_raw_pixels=raw_pixel_knn(tr.images, tr.labels, va.images, va.labels, 32, cfg.knn_k, cfg.knn_temp))
    info['summary'] = (f"shipped teacher: {cfg.epochs} epochs on {cfg.data} ({a.command}); k-NN on the bundled val split "
                       f"{info['sample_knn_top1']:.1f}% (random init {info['sample_knn_random_init']:.1f}%, raw pixels "
                       f"{info['sample_knn_raw_pixels']:.1f}%); on its own data's val split {summary['knn_top1']:.2f}% "
                       f"(random init {summary['knn_random_init']:.2f}%, raw pixels {summary['knn_raw_pixels']:.2f}%)")
    if 'run_linear' in info:
        lin = info['run_linear']
        info['summary'] += (f"; linear probe there {lin['top1']:.2f}% (random init {lin['random_init_top1']:.2f}%, "
                            f"raw pixels {lin['raw_pixels_top1']:.2f}%)")
    save_pretrained(parts, PRETRAINED, info)
    shutil.copyfile(run.log_path, PRETRAINED.with_name('pretrained_log.csv'))
    print(info['summary'])
    for f in PRETRAINED.parent.glob('pretrained*'): print(f'{f}: {f.stat().st_size / 1024:.0f} KB')


if __name__ == '__main__':
    warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated')
    main()
