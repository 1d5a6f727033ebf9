"""Packing at the warehouse's pack station: choosing the boxes for a fulfilment's units with a
placement that proves they fit (`boxes`), the expected parcel weight and the check of the scale's
reading against it (`weights`), the scan-to-verify state of a parcel being packed (`scan`), all
pure; and the packing slip as a PDF (`slip`)."""
