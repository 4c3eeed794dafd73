from nestcustom.cli.main import main

main()
