from nestcustom.cli import main

main()
