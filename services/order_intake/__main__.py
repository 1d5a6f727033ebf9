from services.order_intake.app import main

main()
