from services.payment.app import main

main()
