module github.com/facgw/facgw

go 1.26.8

require (
	github.com/goburrow/modbus v0.1.0
	gopkg.in/yaml.v3 v3.0.1
)

require github.com/goburrow/serial v0.1.0
