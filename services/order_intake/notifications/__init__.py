"""Customer notifications: `CustomerNotification` messages rendered from templates and sent by
e-mail over SMTP (`service` has the consumer handler and the sender, `rendering` the templates in `templates/`,
`mailer` the SMTP client)."""
