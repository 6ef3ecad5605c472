"""torchrun as IDC Inspector starts it: python -m idc_torch.torchrun <torchrun's own arguments>.

This is torch.distributed.run's main() with one fix: PyTorch before 2.0 on Python 3.11+ reads
--redirects and --tee "0" (their defaults) as None, because iterating an IntFlag there skips the
zero member, and fails before starting any worker. Elsewhere it changes nothing.
"""
from torch.distributed.elastic.multiprocessing import api as _api


def _patch_std():
    std = _api.Std
    try:
        broken = std.from_str('0') is None
    except Exception:
        broken = False
    if not broken:
        return
    original = std.from_str.__func__

    def from_str(cls, vm):
        got = original(cls, vm)
        if got is None:
            return cls(int(vm))
        if isinstance(got, dict):
            return {k: cls.NONE if v is None else v for k, v in got.items()}
        return got

    std.from_str = classmethod(from_str)


_patch_std()

if __name__ == '__main__':
    from torch.distributed.run import main
    main()
