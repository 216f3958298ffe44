from inspector.entry import main

main()
