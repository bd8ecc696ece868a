from clients.cli.app import main

main()
