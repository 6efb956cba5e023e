Feature: Allocating order lines to batches
  As a stock controller
  I want every order line allocated to the best batch that can take it
  So that stock on hand ships first and shipments are used in the order they arrive

  @book
  Scenario: Stock in the warehouse is preferred to a shipment
    Given a batch "in-stock-batch" of 100 "RETRO-CLOCK" in the warehouse
    And a batch "shipment-batch" of 100 "RETRO-CLOCK" arriving tomorrow
    When I allocate order "oref" of 10 "RETRO-CLOCK"
    Then the allocation returns batch "in-stock-batch"
    And batch "in-stock-batch" has 90 available
    And batch "shipment-batch" has 100 available

  @book
  Scenario: The earliest shipment is preferred, whatever order the batches came in
    Given these batches:
      | batch   | qty | sku              | eta      |
      | medium  | 100 | MINIMALIST-SPOON | tomorrow |
      | speedy  | 100 | MINIMALIST-SPOON | today    |
      | slow    | 100 | MINIMALIST-SPOON | later    |
    When I allocate order "order1" of 10 "MINIMALIST-SPOON"
    Then the allocation returns batch "speedy"
    And batch "speedy" has 90 available
    And batch "medium" has 100 available
    And batch "slow" has 100 available

  @book
  Scenario Outline: An order of <qty> goes to <batch> when the warehouse holds <warehouse> and the first shipment <tomorrow>
    Given a batch "warehouse" of <warehouse> "LAMP" in the warehouse
    And a batch "tomorrow" of <tomorrow> "LAMP" arriving tomorrow
    And a batch "later" of 100 "LAMP" arriving later
    When I allocate order "o1" of <qty> "LAMP"
    Then the allocation returns batch "<batch>"
    And batch "<batch>" has <left> available

    Examples: the preferred batch that can take the whole line wins; the others fall through
      | warehouse | tomorrow | qty | batch     | left |
      | 100       | 100      | 10  | warehouse | 90   |
      | 10        | 100      | 10  | warehouse | 0    |
      | 9         | 100      | 10  | tomorrow  | 90   |
      | 9         | 9        | 10  | later     | 90   |
      | 0         | 10       | 10  | tomorrow  | 0    |

  @book
  Scenario: A successful allocation bumps the product's version by exactly one
    Given a batch "b1" of 100 "SCANDI-PEN" in the warehouse
    And the product "SCANDI-PEN" is at version 7
    When I allocate order "o1" of 10 "SCANDI-PEN"
    Then the allocation returns batch "b1"
    And the product "SCANDI-PEN" is at version 8

  @beyond
  Scenario: Sending an allocated order again returns its batch and changes nothing
    Given a batch "warehouse" of 10 "RETRO-CLOCK" in the warehouse
    And a batch "shipment" of 100 "RETRO-CLOCK" arriving tomorrow
    And order "o1" of 10 "RETRO-CLOCK" has been allocated
    When I allocate order "o1" of 10 "RETRO-CLOCK"
    Then the allocation returns batch "warehouse"
    And nothing changed in the store
    And batch "warehouse" holds 1 order
    And batch "shipment" has 100 available
    And the product "RETRO-CLOCK" is at version 1
    And the bus handled no events
    And no mail was sent

  @beyond
  Scenario: The same order id under another sku is another order
    Given a batch "lamps" of 10 "LAMP" in the warehouse
    And a batch "tables" of 10 "TABLE" in the warehouse
    And order "o1" of 3 "LAMP" has been allocated
    When I allocate order "o1" of 4 "TABLE"
    Then the allocation returns batch "tables"
    And batch "lamps" has 7 available
    And batch "tables" has 6 available

  @beyond
  Scenario: A step that sets the stage means the same under When as under Given
    Given a batch "desk-1" of 5 "DESK" in the warehouse
    When a batch "desk-2" of 5 "DESK" arriving tomorrow
    And order "o1" of 5 "DESK" has been allocated
    And I allocate order "o2" of 5 "DESK"
    Then the allocation returns batch "desk-2"
    And batch "desk-1" holds order "o1"
    And the product "DESK" has the batches "desk-1, desk-2", in this order
