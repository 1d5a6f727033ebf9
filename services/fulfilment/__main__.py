from services.fulfilment.app import main

main()
