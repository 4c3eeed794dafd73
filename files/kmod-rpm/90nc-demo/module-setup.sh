#!/bin/bash
# dracut module nc-demo: puts the nc_demo kernel module into the initramfs.
check() { return 0; }
depends() { return 0; }
installkernel() { instmods nc_demo; }
