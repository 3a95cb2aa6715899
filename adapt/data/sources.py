"""Every download location in one place, so dead links are easy to update.

Each entry names the archive, where it unpacks, and its checksum. Set ``ADAPT_DATA_MIRROR`` (or
pass ``mirror=`` to :func:`adapt.data.download.fetch`) to fetch ``<mirror>/<filename>`` instead of
the listed URL, for example from an institutional cache. An entry without a checksum is never
downloaded automatically: nothing unverified lands on disk.

The digit datasets MNIST, USPS and SVHN are fetched by torchvision, which keeps its own URLs and
MD5 checksums.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    url: str
    filename: str
    md5: str | None
    #: Folder (under the data root) that the archive creates.
    unpacks_to: str
    note: str = ""


DOMAINNET_BASE = "http://csr.bu.edu/ftp/visda/2019/multi-source"

SOURCES: dict[str, Source] = {
    # Hosted copies used by pytorch-adapt (its datasets/*.py list these URLs and MD5 checksums).
    "mnistm": Source(
        "https://cornell.box.com/shared/static/jado7quprg6hzzdubvwzh9umr75damwi",
        "mnist_m.tar.gz",
        "859df31c91afe82e80e5012ba928f279",
        "mnist_m",
        "MNIST-M as released by Ganin et al.: mnist_m_{train,test}/*.png with mnist_m_{train,test}_labels.txt",
    ),
    "office31": Source(
        "https://cornell.box.com/shared/static/3v2ftdkdhpz1lbbr4uhu0135w7m79p7q",
        "office31.tar.gz",
        "89818e596f3cdda1d56da0f077435faa",
        "office31",
        "Office-31 (Saenko et al. 2010), original folder layout",
    ),
    "officehome": Source(
        "https://cornell.box.com/shared/static/xwsbubtcr8flqfuds5f6okqbr3z0w82t",
        "officehome_resized.tar.gz",
        "52d6039512434aa561d66de9c10828c3",
        "officehome",
        "Office-Home (Venkateswara et al. 2017), images resized by pytorch-adapt's maintainers",
    ),
    "domainnet126": Source(
        "https://cornell.box.com/shared/static/5uu0v3rs9heusbiht2nn1gbn4yfspas6",
        "domainnet126.tar.gz",
        "50f29fa0152d715c036c813ad67502d6",
        "domainnet",
        "DomainNet-126 (Saito et al. 2019): 4 domains, 126 classes, with {domain}126_{train,test}.txt lists",
    ),
    # Zenodo record 2535967 (Hendrycks & Dietterich 2019), with the MD5 Zenodo lists for the file.
    "cifar10-c": Source(
        "https://zenodo.org/records/2535967/files/CIFAR-10-C.tar",
        "CIFAR-10-C.tar",
        "56bf5dcef84df0e2308c6dcbcbbd8499",
        "CIFAR-10-C",
        "CIFAR-10-C: <corruption>.npy (50000x32x32x3 uint8, severities 1-5 in blocks of 10000) and labels.npy",
    ),
    # Official locations without a published checksum: download by hand (see each layout).
    "bsds500": Source(
        "http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/BSR/BSR_bsds500.tgz",
        "BSR_bsds500.tgz",
        None,
        "BSR",
        "Berkeley segmentation photos; their 200 training images are MNIST-M's backgrounds",
    ),
    "visda2017-train": Source("http://csr.bu.edu/ftp/visda17/clf/train.tar", "train.tar", None, "visda2017/train"),
    "visda2017-validation": Source(
        "http://csr.bu.edu/ftp/visda17/clf/validation.tar", "validation.tar", None, "visda2017/validation"
    ),
    **{
        f"domainnet-{d}": Source(
            f"{DOMAINNET_BASE}/{'groundtruth/' if d in ('clipart', 'painting') else ''}{d}.zip",
            f"{d}.zip",
            None,
            "domainnet",
        )
        for d in ("clipart", "infograph", "painting", "quickdraw", "real", "sketch")
    },
}
