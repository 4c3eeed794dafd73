// SPDX-License-Identifier: GPL-2.0
/* nc_demo: the smallest out-of-tree module, built for the image's kernel. */
#include <linux/module.h>

static char *greeting = "hello";
module_param(greeting, charp, 0444);
MODULE_PARM_DESC(greeting, "what the module says when it loads");

static int __init nc_demo_init(void)
{
	return 0;
}

static void __exit nc_demo_exit(void)
{
}

module_init(nc_demo_init);
module_exit(nc_demo_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("nestcustom example module");
