KES Linux engine module (example payload)
