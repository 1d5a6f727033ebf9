from services.returns.app import main

main()
