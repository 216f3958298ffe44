from inspector.cli.entry import main

main()
